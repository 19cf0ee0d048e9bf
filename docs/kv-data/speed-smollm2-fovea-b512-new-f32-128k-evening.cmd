# binary built from d228310, 19:24-19:39 UTC, f16 then f32, 2 threads, no --kv-ram
fovea bench -m smollm2-135m -t 2 -p 0 -n 64 -r 3 -d 0,131072 --kv fovea --kv-budget 512 --kv-type f32 --json
