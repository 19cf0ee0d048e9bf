/tmp/target-lead/release/fovea passkey -m smollm2-135m -t 2 --json --lengths 2000,4000 --depths 10,50,90 --trials 1 --kv full
