fovea bench -m smollm2-135m -t 2 -p 0 -n 64 -r 3 --json -d 0,2048,8192,32768 --kv fovea --kv-budget 512 --kv-type f16
