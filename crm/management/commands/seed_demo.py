"""Demo data: organizations acme and globex with one user per role, and a platform operator.

Idempotent: running it again changes nothing that exists and adds what is missing. Refuses to run with
DEBUG off (a production database) unless --force.
"""

import datetime
from collections import Counter

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings
from django.utils import timezone

from crm import services
from crm.models import Department, Notification, Organization, User
from crm.permissions import Role
from crm.tenancy import system_context

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105  (documented demo credential, refused in production)
ORGANIZATIONS = [
    {
        "slug": "acme",
        "name": "Acme Corp",
        "time_zone": "America/New_York",
        "currency": "USD",
        "seat_limit": 25,
        "plan": Organization.Plan.PROFESSIONAL,
    },
    {
        "slug": "globex",
        "name": "Globex Inc",
        "time_zone": "Europe/Berlin",
        "currency": "EUR",
        "seat_limit": 10,
        "plan": Organization.Plan.STARTER,
    },
]
PEOPLE = {
    "acme": {
        Role.ADMIN: ("Alice", "Anders", "", "Operations lead"),
        Role.SALES_MANAGER: ("Marcus", "Reid", Department.SALES, "Head of sales"),
        Role.SALES_REP: ("Sofia", "Lopez", Department.SALES, "Account executive"),
        Role.SUPPORT_MANAGER: ("Hannah", "Kim", Department.SUPPORT, "Support manager"),
        Role.SUPPORT_AGENT: ("Tom", "Becker", Department.TECHNICAL, "Support engineer"),
        Role.MARKETING_MANAGER: ("Priya", "Natarajan", Department.MARKETING, "Marketing manager"),
    },
    "globex": {
        Role.ADMIN: ("Gregor", "Lindqvist", "", "IT administrator"),
        Role.SALES_MANAGER: ("Elena", "Rossi", Department.SALES, "Sales director"),
        Role.SALES_REP: ("Jonas", "Weber", Department.SALES, "Sales representative"),
        Role.SUPPORT_MANAGER: ("Fatima", "Haddad", Department.SUPPORT, "Customer care lead"),
        Role.SUPPORT_AGENT: ("Lukas", "Novak", Department.BILLING, "Billing specialist"),
        Role.MARKETING_MANAGER: ("Chloe", "Martin", Department.MARKETING, "Growth marketer"),
    },
}

# More of the sales team, so the leaderboard and the per-rep forecast have people to compare.
EXTRA_SELLERS = {
    "acme": [
        (Role.SALES_REP, "Daniel", "Park", "Account executive"),
        (Role.SALES_REP, "Grace", "Okoye", "Business development rep"),
    ],
    "globex": [(Role.SALES_REP, "Marta", "Kowalczyk", "Key account manager")],
}


class Command(BaseCommand):
    help = "Create the demo organizations (acme, globex), one user per role in each, and root@crm.example."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off.")

    def handle(self, *args, force: bool = False, **options):
        if not settings.DEBUG and not force:
            raise CommandError("seed_demo refuses to run with DEBUG off (use --force if you really mean it).")
        created: Counter[str] = Counter()
        # Demo data emails nobody: ticket replies, surveys and reminders it triggers go to a dummy backend.
        with (
            override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"),
            system_context(),
        ):
            for spec in ORGANIZATIONS:
                org, made = Organization.objects.get_or_create(
                    slug=spec["slug"],
                    defaults={**spec, "renewal_date": timezone.localdate() + datetime.timedelta(days=200)},
                )
                created["organizations"] += made
                for role, (first, last, department, title) in PEOPLE[org.slug].items():
                    email = f"{role}@{org.slug}.example"
                    if User.objects.filter(email=email).exists():
                        continue
                    user = services.user_create(
                        organization=org,
                        actor=None,
                        email=email,
                        role=role,
                        first_name=first,
                        last_name=last,
                        department=department,
                        job_title=title,
                        password=DEMO_PASSWORD,
                    )
                    services.notification_create(
                        recipient=user,
                        title=f"Welcome to {org.name}'s CRM, {first}!",
                        body="Your profile lets you pick your time zone and how dense tables are.",
                        url="/profile/",
                        level=Notification.Level.SUCCESS,
                    )
                    created["users"] += 1
            for org in Organization.objects.filter(slug__in=[o["slug"] for o in ORGANIZATIONS]):
                created.update(self._seed_domain(org))
            if created["opportunities"]:
                from sales.dashboard import dashboard_refresh

                dashboard_refresh()  # so the sales dashboard shows the demo deals before beat's first run
            if not User.objects.filter(email="root@crm.example").exists():
                User.objects.create_superuser(
                    "root@crm.example", DEMO_PASSWORD, first_name="Platform", last_name="Operator"
                )
                created["users"] += 1
        made = ", ".join(f"{n} {kind}" for kind, n in created.items() if n)
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {made or 'nothing new'} created."))
        self.stdout.write(
            f"Sign in as <role>@acme.example or <role>@globex.example, password {DEMO_PASSWORD}"
        )

    def _seed_domain(self, org: Organization) -> Counter[str]:
        """Each domain app's demo data for `org` (idempotent: apps skip what exists)."""
        from customers.demo import seed_customers, seed_segments
        from customers.services.scoring import scores_recompute

        made: Counter[str] = Counter()
        made["customers"] = seed_customers(
            organization=org, users=list(User.objects.filter(organization=org))
        )
        if made["customers"]:
            scores_recompute(organization_id=org.pk)
            self.stdout.write(
                f"{org.name}: {made['customers']} customers with a year of interactions, scored"
            )
        made["segments"] = seed_segments(organization=org)
        made.update(self._seed_sales(org))
        made.update(self._seed_support(org))
        made.update(self._seed_marketing(org))
        made.update(self._seed_privacy(org))
        return made

    def _seed_privacy(self, org: Organization) -> Counter[str]:
        from compliance.demo import seed_privacy

        made: Counter[str] = Counter()
        made["privacy requests"] = seed_privacy(organization=org)
        if made["privacy requests"]:
            self.stdout.write(
                f"{org.name}: {made['privacy requests']} privacy requests in every state, consent histories "
                "and restricted customers"
            )
        return made

    def _seed_marketing(self, org: Organization) -> Counter[str]:
        from marketing.demo import seed_marketing

        made: Counter[str] = Counter()
        made["campaigns"] = seed_marketing(
            organization=org, users=list(User.objects.filter(organization=org))
        )
        if made["campaigns"]:
            self.stdout.write(
                f"{org.name}: {made['campaigns']} campaigns with sends, opens and clicks, an A/B test, "
                "a nurture sequence and a lead form"
            )
        return made

    def _seed_support(self, org: Organization) -> Counter[str]:
        from support import demo

        made: Counter[str] = Counter()
        made["users"] = demo.seed_agents(organization=org, password=DEMO_PASSWORD)
        made["articles"] = demo.seed_knowledge_base(organization=org)
        made["canned responses"] = demo.seed_canned_responses(organization=org)
        made["tickets"] = demo.seed_tickets(organization=org)
        if made["tickets"]:
            self.stdout.write(f"{org.name}: {made['tickets']} tickets with threads, SLA history and surveys")
        return made

    def _seed_sales(self, org: Organization) -> Counter[str]:
        from sales import demo

        made: Counter[str] = Counter()
        for role, first, last, title in EXTRA_SELLERS.get(org.slug, ()):
            email = f"{first.lower()}.{last.lower()}@{org.slug}.example"
            if not User.objects.filter(email=email).exists():
                services.user_create(
                    organization=org,
                    actor=None,
                    email=email,
                    role=role,
                    first_name=first,
                    last_name=last,
                    department=Department.SALES,
                    job_title=title,
                    password=DEMO_PASSWORD,
                )
                made["users"] += 1
        made["opportunities"] = demo.seed_opportunities(organization=org)
        made["quotas"] = demo.seed_quotas(organization=org)
        made["activities"] = demo.seed_activities(organization=org)
        if made["opportunities"]:
            self.stdout.write(
                f"{org.name}: {made['opportunities']} opportunities with history, {made['activities']} activities"
            )
        made["products"] = demo.seed_products(organization=org)
        # Imported (ERP) orders first: they belong to the deals won before any quote was accepted.
        made["orders"] = demo.seed_imported_orders(organization=org)
        quotes, orders = demo.seed_quotes(organization=org)
        made["quotes"] = quotes
        made["orders"] += orders
        if quotes or made["orders"]:
            self.stdout.write(
                f"{org.name}: {made['products']} products, {quotes} quotes in every status, "
                f"{made['orders']} orders ({orders} from accepted quotes)"
            )
        return made
