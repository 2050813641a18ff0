"""Scoring: J&F exactly as davis2017-evaluation, the YouTube-VOS submission layout, and the redundancy
analyser behind ``reusegate stats`` (consecutive-frame IoU histogram and the oracle reuse bound).

Public API::

    evaluate_sequences(gt_root, pred_dir, sequences=None) -> EvaluationResult   (.jf_mean, .write_csvs)
    jaccard(pred, gt), f_measure(pred, gt), seg2bmap(mask), db_statistics(values)
    consecutive_ious(sequence), redundancy_report(reader), oracle_bound(s)(sequence(s), taus)
    write_youtube_vos_submission(pred_dir, reader, zip_path)
"""
from .davis import GLOBAL_COLUMNS, EvaluationResult, ObjectResult, evaluate_sequences
from .metrics import boundary_radius, db_statistics, disk, f_measure, jaccard, seg2bmap
from .redundancy import OracleScore, RedundancyReport, consecutive_ious, oracle_bound, oracle_bounds, redundancy_report
from .youtube import check_submission, write_youtube_vos_submission

__all__ = ["evaluate_sequences", "GLOBAL_COLUMNS", "EvaluationResult", "ObjectResult", "jaccard", "f_measure", "seg2bmap",
           "db_statistics", "boundary_radius", "disk", "consecutive_ious", "redundancy_report", "RedundancyReport",
           "oracle_bound", "oracle_bounds", "OracleScore", "check_submission", "write_youtube_vos_submission"]
