"""Forms of the knowledge base: the article editor and the filters of the article list."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from support.models import Article


class ArticleForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    slug = forms.SlugField(
        label=_("Address"),
        max_length=200,
        required=False,
        help_text=_("The last part of the public link; left empty, it is made from the title."),
    )
    category = forms.CharField(
        label=_("Category"),
        max_length=100,
        required=False,
        help_text=_("Articles are listed by category in the public knowledge base."),
        widget=forms.TextInput(attrs={"list": "kb-categories", "autocomplete": "off"}),
    )
    tags = forms.CharField(
        label=_("Tags"), max_length=500, required=False, help_text=_("Separated by commas; searched too.")
    )
    status = forms.ChoiceField(
        label=_("Status"),
        choices=Article.Status.choices,
        help_text=_("Only published articles are public and suggested to customers."),
    )
    body = forms.CharField(
        label=_("Body"),
        help_text=_(
            "Markdown: **bold**, _italic_, # headings, - lists, [links](https://example.com), tables and "
            "`code`. Scripts, frames and styles are removed."
        ),
        widget=forms.Textarea(attrs={"rows": 18, "class": "font-monospace"}),
    )

    @classmethod
    def for_article(cls, article: Article | None, data=None):
        initial = {"status": Article.Status.DRAFT}
        if article is not None:
            initial = {
                "title": article.title,
                "slug": article.slug,
                "category": article.category,
                "tags": ", ".join(article.tags),
                "status": article.status,
                "body": article.body,
            }
        return cls(data, initial=initial)


class ArticleFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), max_length=200, required=False)
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any status")), *Article.Status.choices]
    )
    category = forms.CharField(label=_("Category"), max_length=100, required=False)


class PreviewForm(forms.Form):
    body = forms.CharField(required=False, max_length=200_000)
