"""Template helpers of the campaign pages: the figures read off a campaign row (rates, budget use, channel
names), computed by the selectors' functions so the list, the detail page and the tests agree."""

from django import template

from marketing.selectors import campaigns as selectors

register = template.Library()


@register.simple_tag
def open_rate(campaign):
    return selectors.open_rate(campaign)


@register.simple_tag
def click_rate(campaign):
    return selectors.click_rate(campaign)


@register.simple_tag
def budget_used(campaign):
    return selectors.budget_used(campaign)


@register.filter
def channel_labels(campaign) -> list[str]:
    return selectors.channel_labels(campaign)
