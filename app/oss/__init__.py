"""The OSS upload flow: ``DescribeOssUploadToken``, an OSS-compatible PutObject, retention."""
