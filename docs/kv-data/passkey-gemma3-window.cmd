fovea passkey -m gemma3-270m -t 1 --json --depths 10,50,90 --trials 1 --lengths 4000,10000 --kv window --kv-budget 512
