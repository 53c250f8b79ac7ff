"""The one door through the users policy before anyone is signed in: email -> account id.

`crm_login_user_id(email)` is SECURITY DEFINER and widens `app.user_role` only for its own duration, so
it can find the account across organizations while returning nothing but its id.
"""

from django.db import connection

LOGIN_LOOKUP_SQL = """
CREATE OR REPLACE FUNCTION crm_login_user_id(login_email text) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    previous_role text := coalesce(current_setting('app.user_role', true), '');
    found uuid;
BEGIN
    -- Widen the view for this one lookup only, then put the caller's role back (an error aborts the
    -- transaction or savepoint, which undoes the set_config as well).
    PERFORM set_config('app.user_role', 'system_admin', true);
    SELECT id INTO found FROM users WHERE lower(email) = lower(login_email);
    PERFORM set_config('app.user_role', previous_role, true);
    RETURN found;
END;
$$;
REVOKE ALL ON FUNCTION crm_login_user_id(text) FROM PUBLIC;
"""


def user_id_for_email(email: str) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT crm_login_user_id(%s)", [email or ""])
        row = cursor.fetchone()
    return str(row[0]) if row and row[0] else None
