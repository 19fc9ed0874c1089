from agentsim.cli import main

main()
