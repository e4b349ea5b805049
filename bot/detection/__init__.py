"""Finding credentials in text: rules as data, a linear-time engine, named filters.

Pure: no I/O beyond reading the bundled rules file. See rules.yaml for the credential types.
"""
