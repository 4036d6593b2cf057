/* SPDX-License-Identifier: MIT */
/*
 * curlbase: the floor under any libcurl-based logger's memory. Loads libcurl the way the
 * daemon does (global init, one easy handle), posts one line of line protocol to URL and
 * exits. Its peak RSS is what libcurl and the libraries it pulls in (OpenSSL, GnuTLS through
 * librtmp, Kerberos, LDAP, ...) cost before a logger does anything; bench/footprint.sh
 * subtracts it from the daemon's.
 *
 *	curlbase URL   e.g. http://127.0.0.1:8086/write?db=x
 */
#include <stdio.h>
#include <curl/curl.h>

int main(int argc, char **argv)
{
	static const char line[] = "curlbase value=1i\n";
	CURL *c;
	CURLcode rc;

	if (argc != 2) {
		fprintf(stderr, "usage: curlbase URL\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	c = curl_easy_init();
	if (c == NULL)
		return 1;
	curl_easy_setopt(c, CURLOPT_URL, argv[1]);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, line);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(sizeof(line) - 1));
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK)
		fprintf(stderr, "curlbase: %s\n", curl_easy_strerror(rc));
	curl_easy_cleanup(c);
	curl_global_cleanup();
	return rc == CURLE_OK ? 0 : 1;
}
