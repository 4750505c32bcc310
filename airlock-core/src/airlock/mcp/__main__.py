from airlock.mcp import main

main()
