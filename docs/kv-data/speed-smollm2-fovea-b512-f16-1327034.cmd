fovea bench -m smollm2-135m -t 2 -p 0 -n 64 -r 3 -d 0,2048,8192,32768 --kv fovea --kv-budget 512 --kv-type f16 --json   # 1327034, 2026-12-03 16:46-16:52, one after the other
