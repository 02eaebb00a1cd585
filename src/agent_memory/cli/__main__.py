from agent_memory.cli.main import main

main()
