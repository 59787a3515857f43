"""The retrain loop (`recsys retrain`): retrain from the event store when enough new ratings
arrived, judge the candidate against the served version on the newest ratings that version
never learned, through the service's own ranking and prediction code, and publish it only when
it is not worse. It reaches into both sides, as the command line does: training/ to fit,
app/ to judge as the service would serve."""
