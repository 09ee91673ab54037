from impex.cli import main

main()
