"""The browser pages of agentsim (see the modules). Importing this package imports no Panel."""
