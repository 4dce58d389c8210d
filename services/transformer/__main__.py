from services.transformer.main import main

main()
