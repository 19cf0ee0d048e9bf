fovea perplexity -m gemma3-270m -f ../shared/golden/text/pride_and_prejudice_ch01-15.txt --streaming --json -t 1 -c 8192 --kv dilated --kv-budget 512
