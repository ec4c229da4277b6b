from narvox.cli import main

raise SystemExit(main())
