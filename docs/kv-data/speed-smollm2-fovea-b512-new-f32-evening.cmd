# binary built from d228310, run one after the other 19:14-19:24 UTC (old f16, new f16, old f32, new f32), 2 threads
fovea bench -m smollm2-135m -t 2 -p 0 -n 64 -r 3 -d 0,2048,8192,32768 --kv fovea --kv-budget 512 --kv-type f32 --json
