"""Getting reports to the collector: the HTTP transport and enrolment."""
