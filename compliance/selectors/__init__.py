"""Every read of the compliance app that is more than a `get`, one module per area (`requests`, `consent`,
...). Keyword-only, take the acting user, scoped to their organization, fixed query counts."""
