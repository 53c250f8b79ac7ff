"""CSV imports: the list of past imports, the upload form, a job's page with its progress bar (htmx polls a
partial until the job is done or failed), its validation report as CSV, and the template files."""

from __future__ import annotations

import csv

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from crm.pagination import keyset_page
from crm.permissions import Capability, requires
from customers import importing, selectors_imports
from customers.exporting import spreadsheet_safe as _cell  # the report quotes values from the file
from customers.forms_imports import ImportUploadForm
from customers.models import ImportJob
from customers.services import imports as services

PER_PAGE = 25


@require_GET
@requires(Capability.IMPORT_CUSTOMERS)
def import_list(request):
    page = keyset_page(
        selectors_imports.import_jobs_of(actor=request.user),
        ordering=("-created_at", "-id"),
        cursor=request.GET.get("cursor"),
        per_page=PER_PAGE,
    )
    return render(request, "customers/imports/list.html", {"page": page, "title": _("Imports")})


@requires(Capability.IMPORT_CUSTOMERS)
def import_upload(request):
    if (
        request.user.organization_id is None
    ):  # a platform operator imports into an organization from the shell
        raise Http404
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        job = services.import_job_create(
            organization=request.user.organization,
            actor=request.user,
            kind=form.cleaned_data["kind"],
            policy=form.cleaned_data["policy"],
            upload=form.cleaned_data["file"],
        )
        return redirect("customers:import_detail", pk=job.pk)
    context = {
        "form": form,
        "formats": [
            {"kind": fmt.kind, "label": ImportJob.Kind(fmt.kind).label, "format": fmt}
            for fmt in importing.FORMATS.values()
        ],
        "title": _("Import a CSV file"),
    }
    return render(request, "customers/imports/upload.html", context)


@require_GET
@requires(Capability.IMPORT_CUSTOMERS)
def import_detail(request, pk):
    job = selectors_imports.import_job_get(actor=request.user, pk=pk)
    return render(request, "customers/imports/detail.html", {**_status(job), "title": job.file_name})


@require_GET
@requires(Capability.IMPORT_CUSTOMERS)
def import_progress(request, pk):
    """The status panel alone, polled every second by the job page while the job runs."""
    job = selectors_imports.import_job_get(actor=request.user, pk=pk)
    return render(request, "customers/imports/_status.html", _status(job))


def _status(job: ImportJob) -> dict:
    """What the status panel shows besides the job: how long it took, once it is over."""
    took = ""
    if job.started_at and job.finished_at:
        seconds = (job.finished_at - job.started_at).total_seconds()
        took = (
            _("%(seconds)s s") % {"seconds": f"{seconds:.1f}"}
            if seconds < 60
            else timesince(job.started_at, job.finished_at)
        )
    return {"job": job, "took": took}


@require_GET
@requires(Capability.IMPORT_CUSTOMERS)
def import_errors_csv(request, pk):
    """The validation report (line, column, message) as a CSV file."""
    job = selectors_imports.import_job_get(actor=request.user, pk=pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-errors-{job.pk}.csv"'
    response.write("\ufeff")  # a byte-order mark, so spreadsheet programs read it as UTF-8
    writer = csv.writer(response)
    writer.writerow([_("line"), _("column"), _("message")])
    for error in job.errors:
        writer.writerow([_cell(error.get("line")), _cell(error.get("column")), _cell(error.get("message"))])
    if job.message:
        writer.writerow(["", "", _cell(job.message)])
    return response


@require_GET
@requires(Capability.IMPORT_CUSTOMERS)
def import_template(request):
    """An empty CSV with the header of the chosen kind (?kind=customers|interactions)."""
    kind = request.GET.get("kind", ImportJob.Kind.CUSTOMERS)
    if kind not in importing.FORMATS:
        raise Http404
    response = HttpResponse(importing.template_csv(kind), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{kind}-template.csv"'
    return response
