fovea perplexity -m smollm2-135m -f ../shared/golden/text/pride_and_prejudice_ch01-15.txt --streaming -c 8192 -t 2 --json --kv fovea --kv-budget 256
