"""Stored templates: kept in the store or read from a folder of files, rendered in a sandbox into the request the
one composer writes (``library``), so a template send is an ordinary message from there on."""
