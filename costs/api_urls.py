from django.urls import path

from . import anomaly_api, api, commitment_api
from .chargeback import api as chargeback_api

app_name = "costs-api"

urlpatterns = [
    path("imports/", api.ImportRunListApi.as_view(), name="imports"),
    path("lines/", api.CostLineListApi.as_view(), name="lines"),
    path("allocated/", chargeback_api.AllocatedLineListApi.as_view(), name="allocated"),
    path("export/", chargeback_api.FocusExportApi.as_view(), name="focus-export"),
    path("commitments/", commitment_api.CommitmentReportApi.as_view(), name="commitments"),
    path("anomalies/", anomaly_api.AnomalyListApi.as_view(), name="anomalies"),
    path(
        "anomalies/<int:pk>/decision",
        anomaly_api.AnomalyDecisionApi.as_view(),
        name="anomaly-decision",
    ),
    path(
        "anomaly-subscriptions/",
        anomaly_api.SubscriptionListApi.as_view(),
        name="anomaly-subscriptions",
    ),
    path(
        "anomaly-subscriptions/<int:pk>",
        anomaly_api.SubscriptionDetailApi.as_view(),
        name="anomaly-subscription",
    ),
]
