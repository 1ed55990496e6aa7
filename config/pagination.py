import re

from rest_framework import pagination
from rest_framework.exceptions import NotFound


class PageNumberPagination(pagination.PageNumberPagination):
    """DRF's, except that a `page` which is not one positive whole number answers 404 (as a page
    past the end does) instead of quietly showing the first page."""

    def get_page_number(self, request, paginator):
        values = request.query_params.getlist(self.page_query_param)
        if values and (len(values) > 1 or not re.fullmatch(r"[1-9][0-9]*", values[0])):
            raise NotFound(self.invalid_page_message.format(page_number=values[-1], message="not a page number"))
        return super().get_page_number(request, paginator)
