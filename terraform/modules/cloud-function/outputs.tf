output "uri" {
  description = "HTTPS URL of the function."
  value       = google_cloudfunctions2_function.function.service_config[0].uri
}

output "service" {
  description = "Name of the Cloud Run service behind the function."
  value       = google_cloudfunctions2_function.function.service_config[0].service
}

output "id" {
  description = "Function resource id."
  value       = google_cloudfunctions2_function.function.id
}
