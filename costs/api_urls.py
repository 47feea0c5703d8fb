from django.urls import path

from . import api, commitment_api
from .chargeback import api as chargeback_api

app_name = "costs-api"

urlpatterns = [
    path("imports/", api.ImportRunListApi.as_view(), name="imports"),
    path("lines/", api.CostLineListApi.as_view(), name="lines"),
    path("allocated/", chargeback_api.AllocatedLineListApi.as_view(), name="allocated"),
    path("export/", chargeback_api.FocusExportApi.as_view(), name="focus-export"),
    path("commitments/", commitment_api.CommitmentReportApi.as_view(), name="commitments"),
]
