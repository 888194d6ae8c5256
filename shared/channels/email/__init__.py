"""E-mail: ``inbound`` (Amazon SES through SNS, and a generic signed inbound-parse endpoint),
``sns`` (SNS message signatures), ``mime`` (a message parsed, its quoted history and signature
stripped), ``thread`` (where a reply goes and the headers that keep it in its thread),
``models`` (the posts, typed), ``sender`` (SMTP or SES's SendRawEmail). Nothing is imported
here: the registry in ``shared.channels`` loads each part when it is used."""
