"""What is done to a claim (create, upload, submit, review): shared by API, workspace, CLI."""
