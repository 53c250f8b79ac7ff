"""Error pages in the app's own layout (500 is plain: the layout itself may be what failed)."""

from django.http import HttpResponseServerError
from django.shortcuts import render
from django.template import loader


def permission_denied(request, exception=None):
    return render(request, "403.html", {"title": "Not allowed"}, status=403)


def not_found(request, exception=None):
    return render(request, "404.html", {"title": "Not found"}, status=404)


def server_error(request):
    return HttpResponseServerError(loader.get_template("500.html").render())
