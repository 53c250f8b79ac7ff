"""The ground every other test stands on: the app role, the test database, and the login fixture."""

from django.db import connection


def test_suite_connects_as_an_unprivileged_role_that_cannot_bypass_rls(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        )
        superuser, bypass, createrole, createdb = cursor.fetchone()
    assert (superuser, bypass, createrole, createdb) == (False, False, False, False)


def test_signed_in_user_sees_the_home_page_of_their_organization(client, login, admin_a):
    login(admin_a)
    response = client.get("/")
    assert response.status_code == 200
    assert admin_a.organization.name in response.content.decode()
