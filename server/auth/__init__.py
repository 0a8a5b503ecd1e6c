"""Who may talk to the collector: enrolment, agent tokens, API tokens and roles."""
