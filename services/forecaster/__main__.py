from services.forecaster.main import main

main()
