"""Use cases of event reads that are not HTTP: the read model of lists (`read_model`)."""
