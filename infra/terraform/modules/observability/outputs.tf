output "cloudwatch_dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.main.dashboard_name
}

output "cloudwatch_api_alarm_names" {
  description = "Alarms that judge an API release, each scoped to one version of the live alias; CodeDeploy stops and rolls back the API canary when one fires."
  value = [
    aws_cloudwatch_metric_alarm.release_error_rate["api"].alarm_name,
    aws_cloudwatch_metric_alarm.release_duration_p99["api"].alarm_name,
    aws_cloudwatch_metric_alarm.release_throttles["api"].alarm_name,
    aws_cloudwatch_metric_alarm.release_api_5xx_rate.alarm_name,
  ]
}

output "cloudwatch_ingest_alarm_names" {
  description = "Alarms that judge an ingest release, each scoped to one version of the live alias. The rejected-records and dead-letter alarms are left out on purpose: they see every version (and the uploaded data), not the release."
  value = [
    aws_cloudwatch_metric_alarm.release_error_rate["ingest"].alarm_name,
    aws_cloudwatch_metric_alarm.release_duration_p99["ingest"].alarm_name,
    aws_cloudwatch_metric_alarm.release_throttles["ingest"].alarm_name,
  ]
}

output "cloudwatch_app_metric_names" {
  description = "Names of the application's EMF metrics in the Ludex namespace, keyed by purpose."
  value       = local.app_metric_names
}

output "sns_topic_arn" {
  description = "ARN of the alarm topic."
  value       = aws_sns_topic.alarms.arn
}

output "firehose_delivery_stream_arn" {
  description = "ARN of the log export stream; null when log export is off."
  value       = local.export_logs ? aws_kinesis_firehose_delivery_stream.logs[0].arn : null
}
