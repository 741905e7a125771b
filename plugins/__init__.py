"""Built-in platform plugins, one folder per platform (plugin + sandbox emulator)."""
