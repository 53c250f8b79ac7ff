"""Every link a page shows leads somewhere its viewer may go: no role is shown a door that answers 403."""

import re

import pytest
from django.test import Client

from crm.permissions import Role
from tests import factories

LINK = re.compile(r'href="(/[^"#]*)"')
PAGES = ["/", "/profile/", "/settings/organization/", "/notifications/", "/search/?q=an"]


@pytest.mark.parametrize("role", Role.values)
def test_pages_link_only_to_what_the_role_may_open(role, org_a, login):
    team = factories.team(org_a)
    factories.notification(team[role], title="Hello", url="/profile/")
    client = login(team[role], on=Client())
    seen = set()
    for page in PAGES:
        response = client.get(page)
        assert response.status_code == 200, page
        seen |= {href.replace("&amp;", "&") for href in LINK.findall(response.content.decode())}
    links = sorted(h for h in seen if not h.startswith(("/static/", "/accounts/logout")))
    assert links, "no links found: the pattern no longer matches the templates"
    for href in links:
        status = client.get(href).status_code
        assert status in (200, 302), f"{role} is shown {href}, which answers {status}"
