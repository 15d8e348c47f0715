import TrackCLI

TrackCLI.main()
