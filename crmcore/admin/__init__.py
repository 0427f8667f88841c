"""Running the library's Liaison: staff accounts and sign-in, permissions, settings, configuration, backup and restore."""
