/* dsn_text.c - the plain words of a bounce's first part (dsn.h): an
 * introduction per kind of report and, per classified reply, what it
 * means and what the reader can do about it. */
#include "queue/dsn_int.h"

static const char *const explanations[DSN_R_COUNT] = {
	[DSN_R_GENERIC] =
		"The receiving server refused the message. Its reply is quoted above. "
		"If it does not tell you what to change, forward this whole notice to "
		"the administrator of your mail server, who can read the technical "
		"part at the end.",
	[DSN_R_UNKNOWN_USER] =
		"The address does not exist on the receiving server. Check its spelling, "
		"both before and after the @, or ask the person for their current "
		"address. Sending again to the same address will fail again.",
	[DSN_R_MAILBOX_FULL] =
		"The recipient's mailbox is full, so their server could not accept any "
		"more mail. They need to delete some messages first. You can try again "
		"in a few days, or reach them another way.",
	[DSN_R_NO_PTR] =
		"The receiving server refused the message because the Internet address "
		"of the sending server has no reverse DNS (PTR) name matching it. Your "
		"message is not at fault: the administrator of the sending mail server "
		"must set up a PTR record for its address (with the hosting provider), "
		"or make it send over the address family that has one (often IPv4).",
	[DSN_R_AUTH_FAILED] =
		"The receiving server could not confirm that the message really comes "
		"from your domain: its SPF, DKIM or DMARC checks failed. Your message "
		"is not at fault: the administrator of your domain must publish an SPF "
		"record that names this mail server and sign outgoing mail with DKIM.",
	[DSN_R_TLS_REQUIRED] =
		"The receiving server accepts mail only over an encrypted (TLS) "
		"connection, and the connection to it could not be encrypted. Forward "
		"this notice to the administrator of your mail server.",
	[DSN_R_LISTED_IP] =
		"The receiving server refused the message because the Internet address "
		"of the sending server is on a block list of addresses that sent spam. "
		"Your message is not at fault: the administrator of the sending mail "
		"server must find out why the address was listed and ask the list (for "
		"Microsoft, its sender delisting portal) to remove it.",
	[DSN_R_RATE_LIMIT] =
		("The receiving server is getting more mail than it accepts from this "
		 "server or for this recipient, and refused more for now. If this notice "
		 "is final, send the message again later; if it keeps happening, send "
		 "fewer messages at a time."),
	[DSN_R_TOO_BIG] =
		"The message is larger than the receiving server accepts. Send it again "
		"with smaller or fewer attachments, or share large files through a link.",
};

const char *
dsn_explanation(enum dsn_reason reason)
{
	return (unsigned)reason < DSN_R_COUNT ? explanations[reason] : explanations[0];
}

const char *
dsn_intro(enum dsn_action worst)
{
	switch (worst) {
	case DSN_FAILED:
		return "Your message could not be delivered to the recipients listed below. "
		       "For each one you will find what the receiving server answered and, in "
		       "plain words, what it means and what you can do. A copy of your message "
		       "(or of its header, if it was large) is attached at the end.";
	case DSN_DELAYED:
		return "Your message has not been delivered yet to the recipients listed below. "
		       "The mail system keeps trying, so you do not need to send it again. You "
		       "will get another notice only if it gives up.";
	case DSN_RELAYED:
		return "Your message was passed on to the mail servers of the recipients listed "
		       "below, as you asked when you sent it. Those servers do not send delivery "
		       "reports, so this is the last notice you will get about it.";
	case DSN_DELIVERED:
	case DSN_EXPANDED:
		break;
	}
	return "Your message was delivered to the recipients listed below, as you asked "
	       "when you sent it.";
}
