"""Airlock mail toolkit: mail model, MIME parsing, query syntax, maildir and imap connectors."""
