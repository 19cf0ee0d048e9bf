fovea perplexity -m smollm2-135m -f ../shared/golden/text/pride_and_prejudice_ch01-15.txt --streaming --json -t 2 -c 31435 --kv fovea --kv-budget 512
