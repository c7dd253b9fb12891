from xeval.cli import main

main()
