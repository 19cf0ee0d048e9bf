fovea passkey -m smollm2-135m -t 1 --json --depths 10,50,90 --trials 1 --lengths 10000 --kv fovea --kv-budget 512 --kv-pos fixed
