"""接入确认 (access confirmation): the acceptance board, the confirmation workflow, the report."""
