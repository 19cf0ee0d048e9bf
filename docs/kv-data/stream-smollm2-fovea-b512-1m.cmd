fovea bench -m smollm2-135m -t 2 -p 0 -n 64 -r 1 --json -d 1048576 --kv fovea --kv-budget 512 --kv-type q8_0 --kv-ram 3G   # ea44ef3, under /usr/bin/time -v
