"""Every write of the compliance app, one module (or package) per area: `requests` (the GDPR and CCPA request
workflow), `consent` (consent records), ... Keyword-only arguments, the acting user passed in, one
transaction each, side effects (emails, tasks) on commit."""
