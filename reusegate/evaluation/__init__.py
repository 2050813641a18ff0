"""Scoring: J&F exactly as davis2017-evaluation, the YouTube-VOS submission layout, and the redundancy
analyser behind ``reusegate stats`` (consecutive-frame IoU histogram and the oracle reuse bound).

Public API::

    evaluate_sequences(gt_root, pred_dir, sequences=None) -> EvaluationResult   (.jf_mean, .write_csvs)
    jaccard(pred, gt), batch_iou(a, b), f_measure(pred, gt), seg2bmap(mask), db_statistics(values)
    scored_frames(n), frame_jf(pred, gt, ids), sequence_jf(preds, gts, ids)   # one rule for every J&F in reusegate
    consecutive_ious(sequence), redundancy_report(reader), oracle_bound(s)(sequence(s), taus)
    write_youtube_vos_submission(pred_dir, reader, zip_path)
"""
from reusegate.evaluation.davis import GLOBAL_COLUMNS, EvaluationResult, ObjectResult, evaluate_sequences
from reusegate.evaluation.metrics import (EMPTY_IOU, batch_iou, boundary_radius, db_statistics, disk, f_measure, frame_jf, jaccard,
                      scored_frames, seg2bmap, sequence_jf)
from reusegate.evaluation.redundancy import OracleScore, RedundancyReport, consecutive_ious, oracle_bound, oracle_bounds, redundancy_report
from reusegate.evaluation.youtube import check_submission, write_youtube_vos_submission

__all__ = ["evaluate_sequences", "GLOBAL_COLUMNS", "EvaluationResult", "ObjectResult", "EMPTY_IOU", "jaccard",
           "batch_iou", "f_measure", "scored_frames", "frame_jf", "sequence_jf", "seg2bmap",
           "db_statistics", "boundary_radius", "disk", "consecutive_ious", "redundancy_report", "RedundancyReport",
           "oracle_bound", "oracle_bounds", "OracleScore", "check_submission", "write_youtube_vos_submission"]
