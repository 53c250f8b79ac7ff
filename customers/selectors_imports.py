"""Reads of the CSV import: the organization's import jobs. Scoped to the actor's organization."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from crm.models import User
from customers.models import ImportJob


def import_jobs_of(*, actor: User) -> QuerySet[ImportJob]:
    """Every import of the actor's organization, with who started it (one query per page)."""
    return ImportJob.objects.for_organization(actor.organization_id).select_related("created_by")


def import_job_get(*, actor: User, pk: uuid.UUID) -> ImportJob:
    """One import of the actor's organization; any other is a 404."""
    return get_object_or_404(import_jobs_of(actor=actor), pk=pk)
