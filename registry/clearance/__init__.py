"""Dataset clearance: datasets, jobs, per-item verdicts, reports, legal review, certificates.

    result = clear_dataset(factory, "data/", use="ai_training", licensee="Lumen AI", owner="me",
                           policies=load_policies(dir), database_url=url, index_dir=home/"index")
    envelope = issue_certificate(session, get_job(session, result.job_id), private_key=...,
                                 chain_pem=..., actor="legal")
    check = verify_certificate(envelope, anchors_pem=..., dataset=open_dataset("data/"))
"""

from registry.clearance.certificates import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    CertificateCheck,
    issue_certificate,
    pae,
    sign_statement,
    verify_certificate,
)
from registry.clearance.datasets import (
    Dataset,
    DatasetItem,
    check_archive,
    compute_dataset_digest,
    open_dataset,
    read_item,
)
from registry.clearance.export import EXPORT_FORMATS, ExportResult, export_cleared
from registry.clearance.models import ClearanceItem, ClearanceJob, JobStatus, Verdict
from registry.clearance.queries import (
    ItemPage,
    LegalNow,
    QueueEntry,
    legal_now,
    page_items,
    review_many,
    review_queue,
)
from registry.clearance.queue import LeaseLost, claim_job, fail_job, new_worker_id, run_worker
from registry.clearance.reports import (
    REPORT_FORMATS,
    REPORT_SCHEMA,
    build_report,
    comparable,
    job_dict,
    render_report,
    report_digest,
)
from registry.clearance.runner import (
    WorkerConfig,
    cancel_job,
    get_job,
    load_matcher,
    run_job,
    submit_job,
    unfinished_jobs,
)
from registry.clearance.service import (
    Clearance,
    clear_dataset,
    exit_code_for,
    find_items,
    get_item,
    list_items,
    list_jobs,
    resume_job,
    review_item,
)
from registry.clearance.summary import EU_SUMMARY_SCHEMA, build_eu_summary, render_markdown

__all__ = [
    "EU_SUMMARY_SCHEMA",
    "EXPORT_FORMATS",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "REPORT_FORMATS",
    "REPORT_SCHEMA",
    "CertificateCheck",
    "Clearance",
    "ClearanceItem",
    "ClearanceJob",
    "Dataset",
    "DatasetItem",
    "ExportResult",
    "ItemPage",
    "JobStatus",
    "LeaseLost",
    "LegalNow",
    "QueueEntry",
    "Verdict",
    "WorkerConfig",
    "build_eu_summary",
    "build_report",
    "cancel_job",
    "check_archive",
    "claim_job",
    "clear_dataset",
    "comparable",
    "compute_dataset_digest",
    "exit_code_for",
    "export_cleared",
    "fail_job",
    "find_items",
    "get_item",
    "get_job",
    "issue_certificate",
    "job_dict",
    "legal_now",
    "list_items",
    "list_jobs",
    "load_matcher",
    "new_worker_id",
    "open_dataset",
    "pae",
    "page_items",
    "read_item",
    "render_markdown",
    "render_report",
    "report_digest",
    "resume_job",
    "review_item",
    "review_many",
    "review_queue",
    "run_job",
    "run_worker",
    "sign_statement",
    "submit_job",
    "unfinished_jobs",
    "verify_certificate",
]
