"""registry.clearance exposes exactly its front door (STYLE.md)."""

from __future__ import annotations

import registry.clearance


def test_the_clearance_package_exports_exactly_its_front_door() -> None:
    assert set(registry.clearance.__all__) == {
        "PAYLOAD_TYPE", "PREDICATE_TYPE", "REPORT_FORMATS", "REPORT_SCHEMA", "CertificateCheck",
        "Clearance", "ClearanceItem", "ClearanceJob", "Dataset", "DatasetItem", "ItemPage",
        "JobStatus", "LegalNow", "QueueEntry", "Verdict", "WorkerConfig", "build_report",
        "cancel_job", "check_archive",
        "clear_dataset", "comparable", "compute_dataset_digest", "exit_code_for", "get_item",
        "get_job", "issue_certificate", "job_dict", "legal_now", "list_items", "list_jobs",
        "load_matcher", "open_dataset", "pae", "page_items", "read_item", "render_report",
        "report_digest", "resume_job", "review_item", "review_many", "review_queue", "run_job",
        "sign_statement", "submit_job", "unfinished_jobs", "verify_certificate",
        "EU_SUMMARY_SCHEMA", "EXPORT_FORMATS", "ExportResult", "build_eu_summary",
        "export_cleared", "find_items", "render_markdown",
        "LeaseLost", "claim_job", "fail_job", "new_worker_id", "run_worker",
    }
    for name in registry.clearance.__all__:
        assert hasattr(registry.clearance, name)


def test_pae_follows_the_dsse_specification() -> None:
    # The example of the DSSE protocol document.
    assert registry.clearance.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world")
